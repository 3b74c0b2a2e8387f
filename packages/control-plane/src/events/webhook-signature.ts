import { createHmac } from "node:crypto";
import { constantTimeEqual } from "../auth/secrets.js";

/** Headers of a webhook delivery. */
export const WEBHOOK_TIMESTAMP_HEADER = "wrenn-webhook-timestamp";
export const WEBHOOK_SIGNATURE_HEADER = "wrenn-webhook-signature";
export const WEBHOOK_EVENT_HEADER = "wrenn-webhook-event";

/** HMAC-SHA256 over `timestamp + "." + body`, hex, as `v1=<hex>`. */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return `v1=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

/**
 * What a receiver runs: checks the signature and that the timestamp is within
 * `toleranceSec` of `now` (replays of old deliveries are refused).
 */
export function verifyWebhook(
  secret: string,
  timestamp: string,
  body: string,
  signature: string,
  options: { now?: Date; toleranceSec?: number } = {},
): boolean {
  const seconds = Number(timestamp);
  if (!Number.isInteger(seconds)) return false;
  const nowSec = Math.floor((options.now ?? new Date()).getTime() / 1000);
  if (Math.abs(nowSec - seconds) > (options.toleranceSec ?? 300)) return false;
  return constantTimeEqual(signWebhook(secret, timestamp, body), signature);
}
