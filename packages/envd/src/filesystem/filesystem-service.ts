import type { ServiceImpl } from "@connectrpc/connect";
import type { Filesystem } from "@wrenn/proto";
import type { EnvdContext } from "../context.js";

export function createFilesystemService(_ctx: EnvdContext): Partial<ServiceImpl<typeof Filesystem>> {
  return {};
}
