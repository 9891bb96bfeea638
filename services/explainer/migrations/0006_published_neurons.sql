-- Neurons imported from a published dataset (OpenAI's GPT-2 XL neuron explanations): the records and
-- moments it published, one row per unit. Its explanations go into `explanations` like any other, with
-- ids derived from the unit and the published text, so importing again never duplicates them.
CREATE TABLE published_neurons (
  unit text PRIMARY KEY,
  model text NOT NULL,
  -- the dataset folder or URL it was read from, and who published it
  source text NOT NULL,
  publisher text NOT NULL,
  layer integer NOT NULL,
  neuron integer NOT NULL,
  -- OpenAI's moments of the neuron's activations over its whole dataset (null where it published NaN)
  mean double precision,
  variance double precision,
  skewness double precision,
  kurtosis double precision,
  max_activation double precision,
  quantile_boundaries jsonb,
  -- {"top":[...],"random":[...],"quantiles":[[...],...]}, each record {"tokens":[...],"ids":[id|null],
  -- "activations":[...]}; null when the records file was missing or malformed
  records jsonb,
  -- how many explanations the explanations file held; null when it was missing or malformed
  explanations integer,
  -- the best published score among its explanations and that explanation: browsing by score at the
  -- scale of a whole model (307,200 neurons) is an index scan, not a join over every explanation
  best_score double precision,
  best_explanation text,
  imported_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX published_neurons_layer ON published_neurons (model, layer, neuron);
CREATE INDEX published_neurons_best ON published_neurons (model, best_score DESC NULLS LAST, layer, neuron);
