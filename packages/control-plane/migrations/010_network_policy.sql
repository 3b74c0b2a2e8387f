-- A sandbox's egress policy ({"allowOut": [...], "denyOut": [...]}, normalised; both empty: open).
-- The agent enforces it and reports it; this copy is what paused sandboxes and sandboxes on
-- hosts that are down show.
ALTER TABLE sandboxes ADD COLUMN network_policy jsonb NOT NULL DEFAULT '{"allowOut":[],"denyOut":[]}';
-- Set: requests through the traffic proxy (other than to envd's port) must carry it in the
-- e2b-traffic-access-token header.
ALTER TABLE sandboxes ADD COLUMN traffic_access_token text;
-- Set: the proxied request's Host header becomes this (`${PORT}` replaced by the target port).
ALTER TABLE sandboxes ADD COLUMN mask_request_host text;
-- A snapshot template's source policy when it was taken: sandboxes from it keep it unless
-- their create sets one. Null for other templates (open).
ALTER TABLE templates ADD COLUMN network_policy jsonb;
