/** Injection tokens for values (not classes) the explainer module provides. */
export const CONFIG = Symbol('LoupeConfig');
export const LOGGER = Symbol('Logger');
export const RECORD_SOURCE = Symbol('RecordSource');
