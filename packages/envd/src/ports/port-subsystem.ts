/**
 * The port subsystem: a scanner that finds sockets listening on localhost inside the
 * VM and a forwarder that exposes each on the guest's external address via socat.
 * Stop leaves no child process behind; Restart works after Stop.
 */
export interface PortSubsystem {
  readonly running: boolean;
  start(): void;
  /** Cancels scanning and forwarding and resolves once every socat child has exited. */
  stop(): Promise<void>;
  restart(): Promise<void>;
  /**
   * Something happened in the guest (a request reached envd): scan at the active pace again,
   * the next scan within one active interval.
   */
  poke(): void;
}
