/** Nest injection tokens for values that are not classes. */
export const CONFIG = Symbol('LoupeConfig');
export const LOGGER = Symbol('Logger');
