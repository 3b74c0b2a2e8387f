import { constants } from "node:fs";

const { S_IFMT, S_IFDIR, S_IFLNK, S_IFBLK, S_IFCHR, S_IFIFO, S_IFSOCK, S_IFREG } = constants;

/**
 * The `permissions` string E2B's envd reports: Go's `os.FileMode.String()` of the lstat
 * mode. Type letters come first in Go's fixed order (d, L, D, p, S, u, g, c, t, ?), "-"
 * when there are none, then rwx for owner/group/other. So a symlink is "Lrwxrwxrwx", a
 * setuid binary "urwxr-xr-x", a character device "Dcrw-rw-rw-".
 */
export function goPermissionsString(mode: number): string {
  const type = mode & S_IFMT;
  let prefix = "";
  if (type === S_IFDIR) prefix += "d";
  if (type === S_IFLNK) prefix += "L";
  if (type === S_IFBLK || type === S_IFCHR) prefix += "D";
  if (type === S_IFIFO) prefix += "p";
  if (type === S_IFSOCK) prefix += "S";
  if (mode & 0o4000) prefix += "u";
  if (mode & 0o2000) prefix += "g";
  if (type === S_IFCHR) prefix += "c";
  if (mode & 0o1000) prefix += "t";
  const known = [S_IFDIR, S_IFLNK, S_IFBLK, S_IFCHR, S_IFIFO, S_IFSOCK, S_IFREG];
  if (!known.includes(type)) prefix += "?";
  if (prefix === "") prefix = "-";
  const rwx = "rwxrwxrwx";
  let perms = "";
  for (let i = 0; i < 9; i++) perms += mode & (1 << (8 - i)) ? rwx[i] : "-";
  return prefix + perms;
}
