/** What to do about errors users meet often, or undefined. */
export function hintFor(message: string): string | undefined {
  if (/No files found that match the pattern/i.test(message)) {
    return 'relative file paths in model SQL are read from the directory of backflow.yml: check the path and that the file exists';
  }
  if (/Could not set lock|Conflicting lock/i.test(message)) {
    return 'another process holds this DuckDB file (a running backflow, or a DuckDB client): close it and retry';
  }
  return undefined;
}
