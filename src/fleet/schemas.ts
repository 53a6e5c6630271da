/**
 * The versioned JSON payloads of the fleet topics: types, validators and schema tags. Defined once
 * in src/schemas/ (TypeBox: the TS types, the validators and the published docs/schemas/*.json all
 * come from the same values); this module is the fleet's view of them.
 */
export type { Validation } from '../schemas/kit.js';
export * from '../schemas/fleet.js';
