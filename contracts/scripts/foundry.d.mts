export type FoundryTool = 'forge' | 'cast' | 'anvil' | 'chisel';
/** Absolute path of the native binary shipped in @foundry-rs/<tool>-<platform>-<arch>. */
export function foundryBinary(tool: FoundryTool): string;
/** Runs a tool (stdio inherited, cwd defaults to the contracts root) and resolves with its exit code. */
export function runFoundry(
  tool: FoundryTool,
  args: string[],
  options?: { cwd?: string },
): Promise<number>;
