/**
 * Builds the migration stream a QEMU started with `-incoming` loads on restore: the
 * stream header, a "ram" section carrying only the pages that must be written eagerly
 * (everything else comes lazily from the copy-on-write memory file), then the device
 * sections saved by `xen-save-devices-state`, then end-of-stream.
 *
 * Facts of QEMU 7.2's format used here (migration/savevm.c, migration/ram.c): big-endian
 * integers; file magic "QEVM" + version 3; section START (0x01) carries section id, idstr,
 * instance and version id, PART (0x02) and END (0x03) only the section id; each section is
 * followed by a footer (0x7e + section id); EOF is 0x00. RAM records are a be64 of
 * (offset | flags): MEM_SIZE 0x04 (block list), ZERO 0x02 (+ one fill byte), PAGE 0x08
 * (+ one page), CONTINUE 0x20 (same block as the previous record), EOS 0x10. The target
 * must run with `-global migration.send-configuration=off`: device-only saves carry no
 * configuration section.
 */
import { open } from "node:fs/promises";
import type { Writable } from "node:stream";
import { WrennError } from "@wrenn/shared";

const FILE_MAGIC = 0x5145564d;
const FILE_VERSION = 3;
const SECTION_START = 0x01;
const SECTION_PART = 0x02;
const SECTION_END = 0x03;
const SECTION_FOOTER = 0x7e;
const STREAM_EOF = 0x00;
const FLAG_ZERO = 0x02n;
const FLAG_MEM_SIZE = 0x04n;
const FLAG_PAGE = 0x08n;
const FLAG_EOS = 0x10n;
const FLAG_CONTINUE = 0x20n;
const RAM_SECTION_VERSION = 4;
/** Any id the device sections do not use; QEMU numbers its own sections from 0 upwards. */
const RAM_SECTION_ID = 0x7fff0001;
const PAGE_SIZE = 4096;
/** Bytes collected before a write to the socket. */
const BATCH_BYTES = 1024 * 1024;

export interface IncomingPage {
  /** Byte offset in guest RAM (page aligned). */
  offset: number;
  /** One page of data, or undefined for a page that must read as zeros. */
  data: Buffer | undefined;
}

export interface IncomingStreamInput {
  /** Name of the guest RAM block (the memory backend's id). */
  ramBlockId: string;
  ramSizeBytes: number;
  pages: AsyncIterable<IncomingPage>;
  /** A file written by `xen-save-devices-state`. */
  deviceStateFile: string;
}

/** Writes the whole stream to `out` (honouring backpressure); does not end it. */
export async function writeIncomingStream(out: Writable, input: IncomingStreamInput): Promise<void> {
  const device = await readDeviceSections(input.deviceStateFile);
  const id = Buffer.from(input.ramBlockId, "latin1");
  const writer = new BatchWriter(out);

  const head = Buffer.alloc(8);
  head.writeUInt32BE(FILE_MAGIC, 0);
  head.writeUInt32BE(FILE_VERSION, 4);
  await writer.push(head);

  // Section start: the RAM block list (only the guest RAM block; ROMs come from the command line).
  await writer.push(sectionStart("ram", RAM_SECTION_ID, RAM_SECTION_VERSION));
  await writer.push(be64(BigInt(input.ramSizeBytes) | FLAG_MEM_SIZE));
  await writer.push(Buffer.from([id.length]), id, be64(BigInt(input.ramSizeBytes)));
  await writer.push(be64(FLAG_EOS), footer(RAM_SECTION_ID));

  await writer.push(sectionHeader(SECTION_PART, RAM_SECTION_ID));
  let first = true;
  for await (const page of input.pages) {
    if (page.offset % PAGE_SIZE !== 0 || page.offset < 0 || page.offset >= input.ramSizeBytes) {
      throw new WrennError("internal", `page offset ${page.offset} is outside guest RAM`);
    }
    const flags = (page.data ? FLAG_PAGE : FLAG_ZERO) | (first ? 0n : FLAG_CONTINUE);
    const record = [be64(BigInt(page.offset) | flags)];
    if (first) record.push(Buffer.from([id.length]), id);
    if (page.data) {
      if (page.data.length !== PAGE_SIZE) throw new WrennError("internal", "a page must be 4096 bytes");
      record.push(page.data);
    } else {
      record.push(Buffer.from([0]));
    }
    await writer.push(...record);
    first = false;
  }
  await writer.push(be64(FLAG_EOS), footer(RAM_SECTION_ID));
  await writer.push(sectionHeader(SECTION_END, RAM_SECTION_ID), be64(FLAG_EOS), footer(RAM_SECTION_ID));

  await writer.push(device, Buffer.from([STREAM_EOF]));
  await writer.flush();
}

/** The device sections of a `xen-save-devices-state` file: without its header and EOF. */
async function readDeviceSections(path: string): Promise<Buffer> {
  const file = await open(path, "r").catch((err: unknown) => {
    throw new WrennError("snapshot_corrupt", `device state ${path} is missing`, { cause: err });
  });
  let buf: Buffer;
  try {
    buf = await file.readFile();
  } finally {
    await file.close();
  }
  if (
    buf.length < 9 ||
    buf.readUInt32BE(0) !== FILE_MAGIC ||
    buf.readUInt32BE(4) !== FILE_VERSION ||
    buf[buf.length - 1] !== STREAM_EOF
  ) {
    throw new WrennError("snapshot_corrupt", `device state ${path} is not a complete QEMU device save`);
  }
  return buf.subarray(8, buf.length - 1);
}

function sectionStart(idstr: string, sectionId: number, version: number): Buffer {
  const name = Buffer.from(idstr, "latin1");
  const buf = Buffer.alloc(1 + 4 + 1 + name.length + 4 + 4);
  let at = buf.writeUInt8(SECTION_START, 0);
  at = buf.writeUInt32BE(sectionId, at);
  at = buf.writeUInt8(name.length, at);
  at += name.copy(buf, at);
  at = buf.writeUInt32BE(0, at); // instance id
  buf.writeUInt32BE(version, at);
  return buf;
}

function sectionHeader(type: number, sectionId: number): Buffer {
  const buf = Buffer.alloc(5);
  buf.writeUInt8(type, 0);
  buf.writeUInt32BE(sectionId, 1);
  return buf;
}

function footer(sectionId: number): Buffer {
  return sectionHeader(SECTION_FOOTER, sectionId);
}

function be64(value: bigint): Buffer {
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64BE(value, 0);
  return buf;
}

/** Gathers small buffers into ~1 MiB writes and waits for 'drain' when the socket is full. */
class BatchWriter {
  private parts: Buffer[] = [];
  private size = 0;

  constructor(private readonly out: Writable) {}

  async push(...bufs: Buffer[]): Promise<void> {
    for (const b of bufs) {
      this.parts.push(b);
      this.size += b.length;
    }
    if (this.size >= BATCH_BYTES) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.size === 0) return;
    const chunk = Buffer.concat(this.parts, this.size);
    this.parts = [];
    this.size = 0;
    if (this.out.destroyed || this.out.writableEnded) {
      throw new WrennError("internal", "QEMU closed the incoming snapshot stream");
    }
    if (!this.out.write(chunk)) {
      // QEMU may close the socket (it failed to load, or died) without an error event.
      await new Promise<void>((resolve, reject) => {
        const done = (err?: Error) => {
          this.out.off("drain", onDrain);
          this.out.off("error", onError);
          this.out.off("close", onClose);
          if (err) reject(err);
          else resolve();
        };
        const onDrain = () => done();
        const onError = (err: Error) => done(err);
        const onClose = () => done(new WrennError("internal", "QEMU closed the incoming snapshot stream"));
        this.out.once("drain", onDrain);
        this.out.once("error", onError);
        this.out.once("close", onClose);
      });
    }
  }
}
