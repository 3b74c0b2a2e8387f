-- The server-side key each refresh token's successor pair is derived with (HMAC of the spent
-- token under this key): holding a refresh token alone never yields the pairs after it.
ALTER TABLE host_refresh_tokens ADD COLUMN derive_key text NOT NULL DEFAULT md5(random()::text || clock_timestamp()::text);
ALTER TABLE host_refresh_tokens ALTER COLUMN derive_key DROP DEFAULT;
