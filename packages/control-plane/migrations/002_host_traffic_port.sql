-- Where each host agent takes sandbox traffic (its Ping reports the port; the host is the
-- one in hosts.url). NULL until the first Ping from an agent that has the listener.
ALTER TABLE hosts ADD COLUMN traffic_port integer;
