import { PREFIX_GROWTH, prefixSteps } from '../../src/imaging/dicom-prefix-steps';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('prefixSteps: a header read from a prefix growing ×16 up to the whole file', () => {
  it('64 KiB, 1 MiB, 16 MiB, 256 MiB… the last exactly the file', () => {
    expect(PREFIX_GROWTH).toBe(16);
    expect(prefixSteps(400 * MiB, 64 * KiB)).toEqual([64 * KiB, MiB, 16 * MiB, 256 * MiB, 400 * MiB]);
    expect(prefixSteps(3 * MiB, 64 * KiB)).toEqual([64 * KiB, MiB, 3 * MiB]);
    expect(prefixSteps(16 * MiB, 64 * KiB)).toEqual([64 * KiB, MiB, 16 * MiB]);
  });

  it('small and empty files, and heads no file is smaller than', () => {
    expect(prefixSteps(1000, 64 * KiB)).toEqual([1000]);
    expect(prefixSteps(0, 64 * KiB)).toEqual([0]);
    expect(prefixSteps(300, 0)).toEqual([1, 16, 256, 300]);
  });
});
