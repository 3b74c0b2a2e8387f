/**
 * The nfs-ganesha configuration, as text. Pure, so the export policy can be read (and
 * unit-tested) in one place; ganesha-supervisor.ts writes it and makes ganesha re-read it.
 *
 * Policy: NFSv3 over TCP only (no NFSv4: every clone and restore of a memory snapshot would
 * carry the same client identity and lease state; no UDP, NLM or RQUOTA: guests mount with
 * `nolock`). Every export refuses everyone by default and lets only the listed client
 * addresses (the veth ns addresses of the slots whose sandboxes mount it) read and write.
 * Attribute and directory caches are off so changes made on the host (the content API) show
 * through NFS at once.
 */

export interface GaneshaExport {
  /** Stable for the volume's whole life: every NFS file handle embeds it. 1..65535. */
  exportId: number;
  /** Host directory (the volume's mount point). */
  path: string;
  /** What guests mount, `/v/<volumeId>`. */
  pseudo: string;
  /** Addresses allowed to mount and use it; empty: nobody. */
  clients: readonly string[];
}

export interface GaneshaConfigInput {
  nfsPort: number;
  mountPort: number;
  exports: readonly GaneshaExport[];
}

/** The path guests mount for a volume. */
export function exportPseudoPath(volumeId: string): string {
  return `/v/${volumeId}`;
}

// Config values are written unquoted only when they are plain paths/addresses; anything else
// would change the config's structure, so it is refused rather than escaped.
const SAFE_VALUE = /^[A-Za-z0-9_./:-]+$/;

function value(v: string): string {
  if (!SAFE_VALUE.test(v)) throw new RangeError(`unsafe ganesha config value ${JSON.stringify(v)}`);
  return `"${v}"`;
}

/** Client entries are bare tokens (ganesha refuses a quoted address), so only IPv4 passes. */
function ipv4(v: string): string {
  if (!/^(\d{1,3})(\.\d{1,3}){3}$/.test(v))
    throw new RangeError(`client ${JSON.stringify(v)} is not an IPv4 address`);
  return v;
}

export function ganeshaConfig(input: GaneshaConfigInput): string {
  const lines = [
    "NFS_CORE_PARAM {",
    "  Protocols = 3;",
    `  NFS_Port = ${input.nfsPort};`,
    `  MNT_Port = ${input.mountPort};`,
    "  Enable_NLM = false;",
    "  Enable_RQUOTA = false;",
    "  Enable_UDP = false;",
    "  Mount_Path_Pseudo = true;",
    "}",
    "NFSV4 { Graceless = true; }",
    "EXPORT_DEFAULTS {",
    "  Access_Type = None;",
    "  Squash = No_Root_Squash;",
    "  SecType = sys;",
    "  Transports = TCP;",
    "  Protocols = 3;",
    "  Attr_Expiration_Time = 0;",
    "}",
    "MDCACHE { Dir_Chunk = 0; }",
    "LOG { Default_Log_Level = EVENT; }",
  ];
  const ids = new Set<number>();
  for (const e of [...input.exports].sort((a, b) => a.exportId - b.exportId)) {
    if (!Number.isInteger(e.exportId) || e.exportId < 1 || e.exportId > 65_535 || ids.has(e.exportId)) {
      throw new RangeError(`bad or duplicate export id ${e.exportId}`);
    }
    ids.add(e.exportId);
    lines.push(
      "EXPORT {",
      `  Export_Id = ${e.exportId};`,
      `  Path = ${value(e.path)};`,
      `  Pseudo = ${value(e.pseudo)};`,
      "  FSAL { Name = VFS; }",
    );
    if (e.clients.length > 0) {
      lines.push(
        `  CLIENT { Clients = ${[...e.clients].sort().map(ipv4).join(", ")}; Access_Type = RW; Protocols = 3; }`,
      );
    }
    lines.push("}");
  }
  return `${lines.join("\n")}\n`;
}
