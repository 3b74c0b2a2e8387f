-- One base template per image name: replicas' host monitors (every replica pings) may list a
-- new image at once. NULL team_id values never collide in templates_team_name, so this index.
DELETE FROM templates a USING templates b
  WHERE a.kind = 'base' AND b.kind = 'base' AND a.team_id IS NULL AND b.team_id IS NULL
    AND a.name = b.name AND a.id > b.id;
CREATE UNIQUE INDEX templates_base_name ON templates (name) WHERE team_id IS NULL AND kind = 'base';
