-- API keys of the gateway. Only the sha256 of each key is stored (the key is 256 random bits, so a
-- fast hash is enough); the key itself is printed once by `loupe apikey create`.
CREATE TABLE api_keys (
  id uuid PRIMARY KEY,
  name text NOT NULL,
  key_sha256 text NOT NULL UNIQUE,
  -- the first characters of the key, so a person can tell their keys apart
  prefix text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);
