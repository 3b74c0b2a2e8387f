import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { writePrivateFile } from "./agent-identity.js";

/** What an enrolled agent keeps (`<dataDir>/identity/enrolment.json`, mode 0600). */
export const EnrolmentSchema = z.object({
  control_plane_url: z.string().url(),
  /** The control plane's CA (PEM file) when the system's trust does not cover it. */
  control_plane_ca_path: z.string().nullable(),
  host_id: z.string(),
  credential: z.string(),
  expires_at: z.string(),
  /** When this agent received the credential (its own clock): the refresh is due at 80 % of its life. */
  issued_at: z.string(),
  refresh_token: z.string(),
});
export type Enrolment = z.infer<typeof EnrolmentSchema>;

export function enrolmentPathOf(identityDir: string): string {
  return join(identityDir, "enrolment.json");
}

export function readEnrolment(identityDir: string): Enrolment | undefined {
  const path = enrolmentPathOf(identityDir);
  if (!existsSync(path)) return undefined;
  return EnrolmentSchema.parse(JSON.parse(readFileSync(path, "utf8")));
}

/** Written whole (temp file + rename): a crash leaves the old file or the new one, never half of one. */
export function writeEnrolment(identityDir: string, enrolment: Enrolment): void {
  writePrivateFile(enrolmentPathOf(identityDir), `${JSON.stringify(enrolment, null, 2)}\n`);
}

export function removeEnrolment(identityDir: string): void {
  rmSync(enrolmentPathOf(identityDir), { force: true });
}
