-- One vocabulary: an image is a built kernel + rootfs a host can boot; a template is what a
-- sandbox is created from (an image, or a snapshot plus its start settings).
ALTER TABLE hosts RENAME COLUMN templates TO images;
ALTER TABLE templates RENAME COLUMN base_template TO image;
