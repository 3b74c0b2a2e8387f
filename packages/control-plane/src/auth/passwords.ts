import { randomBytes } from "node:crypto";
import { hash, verify } from "@node-rs/argon2";
import { WrennError } from "@wrenn/shared";

/** Password length rules (characters). */
export const PASSWORD_MIN_LENGTH = 10;
export const PASSWORD_MAX_LENGTH = 256;

/** Throws invalid_argument unless the password meets the length rules. */
export function validatePassword(password: string): void {
  const length = [...password].length;
  if (length < PASSWORD_MIN_LENGTH || length > PASSWORD_MAX_LENGTH) {
    throw new WrennError(
      "invalid_argument",
      `password: must be ${PASSWORD_MIN_LENGTH}-${PASSWORD_MAX_LENGTH} characters`,
    );
  }
}

/** argon2id (the library's defaults: 19 MiB, 2 passes), as a PHC string with its salt. */
export async function hashPassword(password: string): Promise<string> {
  validatePassword(password);
  return hash(password);
}

/** Whether the password matches a stored PHC string; a malformed hash never matches. */
export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  try {
    return await verify(stored, password);
  } catch {
    return false;
  }
}

/**
 * A hash of a random password, checked against when an email has no account, so an unknown
 * email costs the same time as a wrong password.
 */
let decoyHash: Promise<string> | null = null;
export function decoyPasswordHash(): Promise<string> {
  decoyHash ??= hash(randomBytes(16).toString("hex"));
  return decoyHash;
}

/** A random password for generated accounts (bootstrap, reset): 24 base64url characters. */
export function generatePassword(): string {
  return randomBytes(18).toString("base64url");
}
