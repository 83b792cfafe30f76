/** The stack could not start or a part of it failed; `shortMessage` is what a person needs first. */
export class StackError extends Error {
  override name = 'StackError';
  constructor(
    readonly shortMessage: string,
    readonly details: string,
  ) {
    super(details ? `${shortMessage}\n${details}` : shortMessage);
  }
}
