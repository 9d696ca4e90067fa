// grpc-js passes the host it dials as the TLS server name (SNI), even when that host is an IP address.
// Node then ignores the name and prints DeprecationWarning DEP0123 once per process, on every tool's
// and replica's stderr. The warning is harmless here: SNI is only a hint to the server, and the
// server's certificate is still verified against the IP address. Every other warning passes.
const IP_SERVERNAME = 'DEP0123';

export function silenceIpServerNameWarning(): void {
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
    const options = rest[0];
    const code =
      typeof options === 'object' && options !== null ? (options as { code?: unknown }).code : rest[1];
    if (code === IP_SERVERNAME) return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}
