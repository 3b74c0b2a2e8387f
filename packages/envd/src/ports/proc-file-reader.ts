import { close, open, read } from "node:fs";

/**
 * Reads /proc files whole into one reused buffer. The reads run on libuv's thread pool:
 * generating /proc/net/tcp walks the kernel's whole TCP hash table, several milliseconds
 * on a large machine, which must not stall envd's event loop every second. The callback
 * API is used because it allocates only a request object per call (no FileHandle, no
 * promise chain) on a loop that runs for the VM's lifetime. One read at a time per reader.
 */
export class ProcFileReader {
  /** Holds the last file read. Take it after read() settles: read() may replace it to grow. */
  buffer: Buffer;

  constructor(initialBytes = 64 * 1024) {
    this.buffer = Buffer.allocUnsafe(initialBytes);
  }

  /** Reads `path` into `buffer` and resolves with its length. Rejects with open/read errors. */
  read(path: string): Promise<number> {
    return new Promise((resolve, reject) => {
      open(path, "r", (openErr, fd) => {
        if (openErr) return reject(openErr);
        let length = 0;
        const finish = (err: NodeJS.ErrnoException | null) => {
          close(fd, () => (err ? reject(err) : resolve(length)));
        };
        const readMore = () => {
          if (length === this.buffer.length) {
            // Grows and keeps the larger buffer: a machine with many sockets will have them again.
            const bigger = Buffer.allocUnsafe(this.buffer.length * 2);
            this.buffer.copy(bigger, 0, 0, length);
            this.buffer = bigger;
          }
          read(fd, this.buffer, length, this.buffer.length - length, null, (err, n) => {
            if (err) return finish(err);
            if (n === 0) return finish(null);
            length += n;
            readMore();
          });
        };
        readMore();
      });
    });
  }
}
