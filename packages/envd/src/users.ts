import { readFile } from "node:fs/promises";

/** A Linux account as /etc/passwd records it. */
export interface LinuxUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export class UnknownUserError extends Error {
  override readonly name = "UnknownUserError";
  constructor(readonly username: string) {
    super(`user "${username}" does not exist`);
  }
}

export function parsePasswd(text: string): LinuxUser[] {
  const users: LinuxUser[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const [name, , uid, gid, , home, shell] = line.split(":");
    if (!name || uid === undefined || gid === undefined) continue;
    users.push({ name, uid: Number(uid), gid: Number(gid), home: home || "/", shell: shell || "/bin/sh" });
  }
  return users;
}

/** Looks users up in a passwd file read fresh each time (users may be added at runtime). */
export async function lookupUser(username: string, passwdPath = "/etc/passwd"): Promise<LinuxUser> {
  const users = parsePasswd(await readFile(passwdPath, "utf8"));
  const user = users.find((u) => u.name === username);
  if (!user) throw new UnknownUserError(username);
  return user;
}

/** Name of the group with this gid, or the number as text when /etc/group has none. */
export async function groupName(gid: number, groupPath = "/etc/group"): Promise<string> {
  const text = await readFile(groupPath, "utf8").catch(() => "");
  for (const line of text.split("\n")) {
    const [name, , id] = line.split(":");
    if (name && Number(id) === gid) return name;
  }
  return String(gid);
}

/**
 * The user a request acts as: the `Authorization: Basic base64(user:)` header the e2b
 * SDK sends, else the configured default.
 */
export function usernameFromAuthorization(header: string | null | undefined, fallback: string): string {
  if (!header?.startsWith("Basic ")) return fallback;
  const decoded = Buffer.from(header.slice("Basic ".length), "base64").toString("utf8");
  const name = decoded.split(":")[0] ?? "";
  return name === "" ? fallback : name;
}
