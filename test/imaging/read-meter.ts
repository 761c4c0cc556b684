/**
 * What a synchronous piece of code reads from files, measured from outside: `fs.readSync` and
 * `fs.readFileSync` are wrapped (the only ways `src/imaging` reads a file) while it runs.
 */
import fs from 'node:fs';
import { collectGarbage } from '../../src/util/full-gc';

export interface ReadMeter {
  /** Bytes the reads returned, in all. */
  bytesRead: number;
  /** Largest buffer a read filled or a whole-file read returned: the most file bytes held in one buffer. */
  largestBuffer: number;
  /**
   * Largest growth of `process.memoryUsage().arrayBuffers` (where Buffers live, outside the V8 heap)
   * over its value at the start (after a full garbage collection), sampled after each read: an upper
   * bound on what was held, as memory not yet collected counts too.
   */
  peakArrayBuffers: number;
  reads: number;
}

export function meterFileReads<T>(run: () => T): { readonly value: T; readonly meter: ReadMeter } {
  const meter: ReadMeter = { bytesRead: 0, largestBuffer: 0, peakArrayBuffers: 0, reads: 0 };
  collectGarbage();
  const base = process.memoryUsage().arrayBuffers;
  const sample = (): void => {
    meter.peakArrayBuffers = Math.max(meter.peakArrayBuffers, process.memoryUsage().arrayBuffers - base);
  };
  // readFileSync reads through readSync: its reads count once, as one whole-file buffer.
  let inReadFile = false;
  const realReadSync = fs.readSync;
  const realReadFileSync = fs.readFileSync;
  const readSync = jest.spyOn(fs, 'readSync').mockImplementation(((...args: unknown[]): number => {
    const n = Reflect.apply(realReadSync, fs, args) as number;
    if (inReadFile) return n;
    const buffer = args[1] as NodeJS.ArrayBufferView;
    meter.reads += 1;
    meter.bytesRead += n;
    meter.largestBuffer = Math.max(meter.largestBuffer, buffer.byteLength);
    sample();
    return n;
  }) as typeof fs.readSync);
  const readFileSync = jest.spyOn(fs, 'readFileSync').mockImplementation(((...args: unknown[]): Buffer | string => {
    inReadFile = true;
    let out: Buffer | string;
    try {
      out = Reflect.apply(realReadFileSync, fs, args) as Buffer | string;
    } finally {
      inReadFile = false;
    }
    meter.reads += 1;
    meter.bytesRead += out.length;
    meter.largestBuffer = Math.max(meter.largestBuffer, out.length);
    sample();
    return out;
  }) as typeof fs.readFileSync);
  try {
    return { value: run(), meter };
  } finally {
    readSync.mockRestore();
    readFileSync.mockRestore();
  }
}
