/** An argument or a line of stdin as a payload: its JSON value, else the text as a string. */
export function parsePayload(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
