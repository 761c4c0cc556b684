/**
 * Schema and loader for `mappings/prices.json`: the base fee and the add-ons a
 * family may approve, in whole US dollars.
 * @packageDocumentation
 */
import { z } from 'zod';
import { defaultMappingsDir, readMappingFile } from './mappings-dir';

/** File name of the price list inside the mappings directory. */
export const PRICES_FILE = 'prices.json';

/** Add-ons the program can offer. The price list must price each exactly once. */
export const ADD_ON_CODES = ['radiology-review', 'pathology-review'] as const;

/** Validates an add-on code (for API request bodies). */
export const AddOnCodeSchema = z.enum(ADD_ON_CODES, {
  error: `Add-on must be one of ${ADD_ON_CODES.join(', ')}`,
});
export type AddOnCode = z.infer<typeof AddOnCodeSchema>;

const Dollars = z.int().min(0).max(1_000_000);

const AddOnPrice = z.strictObject({
  code: AddOnCodeSchema,
  display: z.string().min(1),
  fee: Dollars,
});
export type AddOnPrice = z.infer<typeof AddOnPrice>;

/** Validates `mappings/prices.json`. */
export const PriceListSchema = z
  .strictObject({
    $comment: z.string().optional(),
    version: z.string().min(1),
    currency: z.literal('USD'),
    base: z.strictObject({ display: z.string().min(1), fee: Dollars }),
    addOns: z.array(AddOnPrice),
  })
  .superRefine((prices, ctx) => {
    const codes = prices.addOns.map((a) => a.code);
    for (const code of ADD_ON_CODES) {
      const count = codes.filter((c) => c === code).length;
      if (count !== 1) {
        ctx.addIssue({ code: 'custom', path: ['addOns'], message: `add-on ${code} must be priced exactly once (found ${count})` });
      }
    }
  });

/** A validated price list. */
export type PriceList = z.infer<typeof PriceListSchema>;

/**
 * Loads and validates the price list.
 * @param dir - the mappings directory; defaults to {@link defaultMappingsDir}
 * @throws MappingsError when the file is missing or invalid
 */
export function loadPriceList(dir: string = defaultMappingsDir()): PriceList {
  return readMappingFile(dir, PRICES_FILE, PriceListSchema);
}
