-- The bearer token of a volume's content API (E2B's `/volumecontent`), returned with the
-- volume. Volumes made before it get one here.
ALTER TABLE volumes ADD COLUMN content_token text NOT NULL DEFAULT '';
UPDATE volumes SET content_token = 'wvt_' || replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', '');
