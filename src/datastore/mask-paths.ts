/** A property name as a mask path (lookups and writes): names with a dot, a backslash or a backtick are quoted, as the API requires. */
export function propertyPath(name: string): string {
  return /[.\\`]/.test(name) ? `\`${name.replace(/[\\`]/g, (c) => `\\${c}`)}\`` : name;
}
