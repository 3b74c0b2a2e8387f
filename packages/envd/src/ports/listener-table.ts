/** A port has a listener on a 127.0.0.0/8 address (IPv4, or IPv4-mapped IPv6). */
export const LOCAL_V4 = 1;
/** A port has a listener on ::1. */
export const LOCAL_V6 = 2;
/** A port has a listener reachable from outside already (wildcard or the forward host). */
export const EXTERNAL = 4;

const PORT_COUNT = 65536;

/**
 * What one scan found, indexed by port. Fixed-size typed arrays that are reset in place,
 * so a scan allocates nothing: a VM can be frozen for a snapshot at any instant, and a
 * loop that churns the heap every second is the likeliest to be caught mid-allocation.
 */
export class ListenerTable {
  /** LOCAL_V4 | LOCAL_V6 | EXTERNAL per port. */
  readonly flags = new Uint8Array(PORT_COUNT);
  /** For LOCAL_V4 ports: the 127.x.y.z address, as a /proc word (see proc-net-tcp.ts). */
  readonly localV4Word = new Uint32Array(PORT_COUNT);
  /** Ports with any flag set, in discovery order; only they are reset. */
  readonly touched = new Uint16Array(PORT_COUNT);
  touchedCount = 0;

  reset(): void {
    for (let i = 0; i < this.touchedCount; i++) {
      const port = this.touched[i] as number;
      this.flags[port] = 0;
      this.localV4Word[port] = 0;
    }
    this.touchedCount = 0;
  }

  /**
   * A fingerprint of the ports and their flags, independent of discovery order: two scans
   * with the same fingerprint found the same listeners (barring a vanishing collision).
   */
  signature(): number {
    let sum = this.touchedCount;
    for (let i = 0; i < this.touchedCount; i++) {
      const port = this.touched[i] as number;
      sum = (sum + Math.imul(port * 8 + (this.flags[port] as number), 0x9e3779b1)) >>> 0;
    }
    return sum;
  }

  mark(port: number, flag: number, v4Word = 0): void {
    const previous = this.flags[port] as number;
    if (previous === 0) this.touched[this.touchedCount++] = port;
    // The first 127/8 address seen for a port wins; any one reaches the server.
    if (flag === LOCAL_V4 && (previous & LOCAL_V4) === 0) this.localV4Word[port] = v4Word;
    this.flags[port] = previous | flag;
  }
}
