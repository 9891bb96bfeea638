-- Feature statistics, records and logit tokens of library SAEs. The records themselves (per-token
-- values of the top, random and quantile windows) are one safetensors file per SAE beside its weights;
-- these tables hold what is queried per feature and the token ids of every window the records show,
-- so the SAE service never reads the capture schema. Everything goes with its SAE.

-- One row per SAE whose records have been computed: where the file is and what it was computed over.
CREATE TABLE feature_records (
  sae_id text PRIMARY KEY REFERENCES saes (id) ON DELETE CASCADE,
  path text NOT NULL,
  -- the capture job (or shard) folder the activations came from
  source text NOT NULL,
  tokens bigint NOT NULL CHECK (tokens >= 0),
  windows integer NOT NULL CHECK (windows >= 0),
  window_length integer NOT NULL CHECK (window_length > 0),
  computed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE feature_stats (
  sae_id text NOT NULL REFERENCES feature_records (sae_id) ON DELETE CASCADE,
  feature integer NOT NULL CHECK (feature >= 0),
  -- fraction of all dataset tokens where the feature is non-zero (exact)
  frequency double precision NOT NULL,
  max_activation double precision NOT NULL,
  -- mean over all dataset tokens, zeros included
  mean_activation double precision NOT NULL,
  -- counts over equal bins from 0 to max_activation of the non-zero values in the random sample
  histogram integer[] NOT NULL,
  PRIMARY KEY (sae_id, feature)
);

-- Token ids of every window some feature's records point at.
CREATE TABLE feature_record_windows (
  sae_id text NOT NULL REFERENCES feature_records (sae_id) ON DELETE CASCADE,
  window_index integer NOT NULL,
  token_ids integer[] NOT NULL,
  PRIMARY KEY (sae_id, window_index)
);

-- Decoder direction through the unembedding (W_dec[f] · W_U): ids largest first, and smallest first.
CREATE TABLE feature_logit_tokens (
  sae_id text NOT NULL REFERENCES saes (id) ON DELETE CASCADE,
  feature integer NOT NULL CHECK (feature >= 0),
  positive_ids integer[] NOT NULL,
  positive_values real[] NOT NULL,
  negative_ids integer[] NOT NULL,
  negative_values real[] NOT NULL,
  PRIMARY KEY (sae_id, feature)
);
