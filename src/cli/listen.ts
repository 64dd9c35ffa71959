/** Parse "HOST:PORT" (or ":PORT", "[::1]:PORT", "PORT") into its parts, with a clear error. */
export function parseListen(value: string, flag = '--listen'): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*))?:?(\d+)$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`${flag} ${JSON.stringify(value)}: expected HOST:PORT, for example 127.0.0.1:7070`);
  }
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}
