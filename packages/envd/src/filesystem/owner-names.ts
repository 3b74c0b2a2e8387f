import { readFile } from "node:fs/promises";
import { parsePasswd } from "../users.js";

export interface OwnerNames {
  user(uid: number): Promise<string>;
  group(gid: number): Promise<string>;
}

function parseGroups(text: string): Map<number, string> {
  const groups = new Map<number, string>();
  for (const line of text.split("\n")) {
    const [name, , id] = line.split(":");
    if (name && id !== undefined && !groups.has(Number(id))) groups.set(Number(id), name);
  }
  return groups;
}

/**
 * Resolves uid/gid to names, reading /etc/passwd and /etc/group at most once per
 * instance: one per request, so a ListDir of thousands of entries reads them once while
 * accounts added at runtime are still seen by the next request. Unknown ids print as numbers.
 */
export function createOwnerNames(passwdPath = "/etc/passwd", groupPath = "/etc/group"): OwnerNames {
  let users: Promise<Map<number, string>> | undefined;
  let groups: Promise<Map<number, string>> | undefined;
  return {
    async user(uid) {
      users ??= readFile(passwdPath, "utf8")
        .catch(() => "")
        .then((text) => {
          const map = new Map<number, string>();
          for (const u of parsePasswd(text)) if (!map.has(u.uid)) map.set(u.uid, u.name);
          return map;
        });
      return (await users).get(uid) ?? String(uid);
    },
    async group(gid) {
      groups ??= readFile(groupPath, "utf8")
        .catch(() => "")
        .then(parseGroups);
      return (await groups).get(gid) ?? String(gid);
    },
  };
}
