/** Injection tokens of values that are not classes. */
export const CONFIG = Symbol('LoupeConfig');
export const LOGGER = Symbol('Logger');
export const CAPTURE = Symbol('CaptureApi');
export const SAE = Symbol('SaeApi');
export const EXPLAINER = Symbol('ExplainerApi');
export const RESPONSE_CACHE = Symbol('ResponseCache');
export const RECORD_CACHE = Symbol('NeuronRecordCache');
