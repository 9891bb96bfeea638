import { UserInputError } from '@loupe/common';
import { LIMITS } from './limits.js';

/** Checks of request arguments that keep payloads bounded; each names the limit it enforces. */
export function checkText(text: string, field: string, maxChars: number): string {
  if (text.length === 0) throw new UserInputError(`${field} is empty`);
  if (text.length > maxChars)
    throw new UserInputError(`${field} has ${text.length} characters; the limit is ${maxChars}`, 'TOO_LONG');
  return text;
}

export function checkHooks(hooks: string[]): string[] {
  if (hooks.length === 0) throw new UserInputError('hooks is empty: ask for at least one hook');
  if (hooks.length > LIMITS.maxHooks)
    throw new UserInputError(
      `${hooks.length} hooks asked for; the limit is ${LIMITS.maxHooks} per request`,
      'TOO_LONG',
    );
  const repeated = hooks.find((hook, i) => hooks.indexOf(hook) !== i);
  if (repeated) throw new UserInputError(`hook "${repeated}" is asked for twice`);
  return hooks;
}

export function checkCount(count: number, what: string, max: number): void {
  if (count > max) throw new UserInputError(`${count} ${what} asked for; the limit is ${max}`, 'TOO_LONG');
}

export function checkRange(value: number, field: string, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max)
    throw new UserInputError(`${field} must be ${min}-${max}, got ${value}`);
  return value;
}
