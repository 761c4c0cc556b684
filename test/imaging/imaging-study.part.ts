import type { ImagingStudy } from 'fhir/r4';
import { parseDicomHeader, type DicomHeader } from '../../src/imaging/dicom-header';
import { checkIdentity } from '../../src/imaging/identity';
import {
  buildImagingStudies,
  conflictingSopInstanceUids,
  DICOM_DCM_SYSTEM,
  imagingStudyId,
  NUMBER_OF_FRAMES_EXTENSION,
  reviewStudyIdentities,
  type DicomInstanceInput,
} from '../../src/imaging/imaging-study';
import { mergeImagingStudies } from '../../src/imaging/merge-imaging-studies';
import { dicomDateTimeToFhir } from '../../src/imaging/dicom-values';
import { FAMILY_UPLOAD_TAG } from '../../src/uploads/origin';
import { corpusFiles, readCorpus } from './support';

function corpusInstances(): DicomInstanceInput[] {
  const out: DicomInstanceInput[] = [];
  for (const name of corpusFiles()) {
    const r = parseDicomHeader(readCorpus(name));
    if (r.ok) out.push({ header: r.header, blobSha256: `${name.length.toString(16).padStart(2, '0')}${'0'.repeat(62)}`, fileName: name });
  }
  return out;
}

const PATIENT = 'Patient/child-1';

describe('buildImagingStudies', () => {
  const instances = corpusInstances();
  const studies = buildImagingStudies(instances, { patientReference: PATIENT, idScope: 'case-1' });

  it('one ImagingStudy per Study Instance UID, sorted, deterministic ids, family-upload tag', () => {
    const uids = [...new Set(instances.map((i) => i.header.studyInstanceUid))].sort();
    expect(studies.map((s) => s.identifier?.[0]?.value)).toEqual(uids.map((u) => `urn:oid:${u}`));
    expect(studies.every((s) => s.identifier?.[0]?.system === 'urn:dicom:uid')).toBe(true);
    expect(studies.map((s) => s.id)).toEqual(uids.map((u) => imagingStudyId(u, 'case-1')));
    expect(studies.every((s) => s.meta?.tag?.some((t) => t.system === FAMILY_UPLOAD_TAG.system && t.code === 'family-upload'))).toBe(true);
    expect(buildImagingStudies([...instances].reverse(), { patientReference: PATIENT, idScope: 'case-1' })).toEqual(studies);
    expect(imagingStudyId('1.2.3')).not.toBe(imagingStudyId('1.2.3', 'case-1'));
  });

  it('maps the CR study of the DICOMDIR tree fully', () => {
    const study = studies.find((s) => s.identifier?.[0]?.value === 'urn:oid:1.3.6.1.4.1.5962.1.1.0.0.0.1196527414.5534.0.1') as ImagingStudy;
    expect(study).toMatchObject({
      resourceType: 'ImagingStudy',
      status: 'available',
      subject: { reference: PATIENT },
      started: '2001-01-01T00:00:00+00:00', // the file has Timezone Offset From UTC +0000
      description: 'XR C Spine Comp Min 4 Views',
      numberOfSeries: 1,
      numberOfInstances: 1,
      modality: [{ system: DICOM_DCM_SYSTEM, code: 'CR', display: 'Computed Radiography' }],
    });
    expect(study.identifier?.[1]).toEqual({ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'ACSN' }] }, value: '2' });
    expect(study.series?.[0]).toMatchObject({
      uid: '1.3.6.1.4.1.5962.1.1.0.0.0.1196527414.5534.0.10',
      number: 1,
      modality: { system: DICOM_DCM_SYSTEM, code: 'CR' },
      description: 'Cervical LAT',
      numberOfInstances: 1,
      bodySite: { system: 'http://snomed.info/sct', code: '122494005', display: 'Cervical spine' },
    });
    expect(study.series?.[0]?.instance?.[0]).toMatchObject({
      uid: '1.3.6.1.4.1.5962.1.1.0.0.0.1196527414.5534.0.11',
      sopClass: { system: 'urn:ietf:rfc:3986', code: 'urn:oid:1.2.840.10008.5.1.4.1.1.1' },
      number: 1,
    });
  });

  it('number of frames on multi-frame instances; one instance listed once when uploaded twice', () => {
    const us = studies.find((s) => s.identifier?.[0]?.value === 'urn:oid:1.2.840.114340.3.8251017118051.1.20160503.120850.2171');
    const frames = us?.series?.[0]?.instance?.[0]?.extension?.find((e) => e.url === NUMBER_OF_FRAMES_EXTENSION);
    expect(frames?.valueUnsignedInt).toBe(30);
    // The MR_small files (implicit, big endian, RLE, JPEG-LS, JPEG 2000) are one SOP instance in five syntaxes.
    const mr = studies.find((s) => s.identifier?.[0]?.value === 'urn:oid:1.3.6.1.4.1.5962.1.2.4.20040826185059.5457');
    expect(mr?.numberOfInstances).toBe(1);
    expect(mr?.series?.[0]?.instance).toHaveLength(1);
  });

  it('started is a full dateTime only with a time zone offset', () => {
    expect(dicomDateTimeToFhir('20061219', '111154.812', undefined)).toBe('2006-12-19');
    expect(dicomDateTimeToFhir('20061219', '111154.812', '-0500')).toBe('2006-12-19T11:11:54.812-05:00');
    expect(dicomDateTimeToFhir('2006.12.19', '1111', '+0100')).toBe('2006-12-19T11:11:00+01:00');
    expect(dicomDateTimeToFhir('20061332', '1111', '+0100')).toBeUndefined();
    // Offsets FHIR cannot write (beyond ±14:00, or minutes past 59): no zone, so the date alone.
    expect(dicomDateTimeToFhir('20240102', '101500', '+1400')).toBe('2024-01-02T10:15:00+14:00');
    expect(dicomDateTimeToFhir('20240102', '101500', '-1200')).toBe('2024-01-02T10:15:00-12:00');
    expect(dicomDateTimeToFhir('20240102', '101500', '+1500')).toBe('2024-01-02');
    expect(dicomDateTimeToFhir('20240102', '101500', '+1430')).toBe('2024-01-02');
    expect(dicomDateTimeToFhir('20240102', '101500', '+0575')).toBe('2024-01-02');
  });
});

function headerWith(patient: Partial<DicomHeader>, study = '1.2.3', sop = '1.2.3.1.1'): DicomInstanceInput {
  const header: DicomHeader = {
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    sopClassUid: '1.2.840.10008.5.1.4.1.1.1',
    sopInstanceUid: sop,
    studyInstanceUid: study,
    seriesInstanceUid: `${study}.1`,
    modality: 'CR',
    hasPixelData: true,
    warnings: [],
    ...patient,
  };
  return { header, blobSha256: 'a'.repeat(64), fileName: sop };
}

describe('checkIdentity', () => {
  const child = { family: 'Núñez-García', given: ['María', 'José'], birthDate: '2015-03-04' };

  it('matches case-insensitively, accent-folded, with middle names and double family names', () => {
    expect(checkIdentity({ patientName: 'NUNEZ GARCIA^MARIA^JOSE', patientBirthDate: '20150304' }, child)).toEqual({ matches: true, mismatches: [], flags: [] });
    expect(checkIdentity({ patientName: 'Nunez^Maria', patientBirthDate: '20150304' }, child).matches).toBe(true);
    // José is only her middle name: a sibling's first name could be that (flagged for review, not a plain mismatch).
    expect(checkIdentity({ patientName: 'García^José', patientBirthDate: '20150304' }, child).flags.map((f) => f.problem)).toEqual(['middle-name-only']);
    // Any component group of the name: the intake may write the child's name in its ideographic form.
    const taro = { ...child, family: '山田', given: ['太郎'] };
    expect(checkIdentity({ patientName: 'Yamada^Tarou=山田^太郎=やまだ^たろう', patientBirthDate: '20150304' }, taro).matches).toBe(true);
    expect(checkIdentity({ patientName: '=山田^太郎', patientBirthDate: '20150304' }, taro).matches).toBe(true);
    expect(checkIdentity({ patientName: 'Suzuki^Hanako=鈴木^花子', patientBirthDate: '20150304' }, taro).matches).toBe(false);
  });

  it("compares the file's sex where both say male or female", () => {
    const girl = { ...child, sex: 'female' };
    expect(checkIdentity({ patientName: 'Nunez^Maria', patientBirthDate: '20150304', patientSex: 'F' }, girl).matches).toBe(true);
    expect(checkIdentity({ patientName: 'Nunez^Maria', patientBirthDate: '20150304', patientSex: 'O' }, girl).matches).toBe(true);
    expect(checkIdentity({ patientName: 'Nunez^Maria', patientBirthDate: '20150304', patientSex: 'M' }, { ...child, sex: 'unknown' }).matches).toBe(true);
    const boy = checkIdentity({ patientName: 'Nunez^Maria', patientBirthDate: '20150304', patientSex: 'M ' }, girl);
    expect(boy).toMatchObject({ matches: false, mismatches: ["patient's sex differs from the case patient"], flags: [{ field: 'sex', problem: 'mismatch', inFile: 'M', expected: 'female' }] });
  });

  it('flags a different child, a different birth date, missing fields', () => {
    const other = checkIdentity({ patientName: 'Nunez^Pedro', patientBirthDate: '20170101' }, child);
    expect(other.matches).toBe(false);
    expect(other.mismatches).toEqual(['patient name differs from the case patient', 'birth date differs from the case patient']);
    expect(other.flags[1]).toEqual({ field: 'birthDate', problem: 'mismatch', inFile: '2017-01-01', expected: '2015-03-04' });
    expect(checkIdentity({}, child).mismatches).toEqual(['patient name missing in the file', 'birth date missing in the file']);
    expect(checkIdentity({ patientName: 'Nunez^Maria', patientBirthDate: '20150304', patientId: 'X9' }, { ...child, identifiers: ['MRN1'] }).mismatches).toEqual([
      'patient ID differs from the case patient',
    ]);
  });

  it('flags the study, not the files: tag identity-mismatch, structured review list, nothing dropped', () => {
    const instances = [
      headerWith({ patientName: 'Nunez^Maria', patientBirthDate: '20150304' }, '1.2.3', '1.2.3.1.1'),
      headerWith({ patientName: 'Nunez^Pedro', patientBirthDate: '20150304' }, '1.2.3', '1.2.3.1.2'),
      headerWith({ patientName: 'Nunez^Maria', patientBirthDate: '20150304' }, '1.2.4', '1.2.4.1.1'),
    ];
    const built = buildImagingStudies(instances, { patientReference: PATIENT, casePatient: child });
    expect(built.map((s) => [s.numberOfInstances, s.meta?.tag?.map((t) => t.code)])).toEqual([
      [2, ['family-upload', 'identity-mismatch']],
      [1, ['family-upload']],
    ]);
    const reviews = reviewStudyIdentities(instances, child);
    expect(reviews.map((r) => [r.studyInstanceUid, r.matches, r.mismatches])).toEqual([
      ['1.2.3', false, ['patient name differs from the case patient', 'patient name differs between files of the same study']],
      ['1.2.4', true, []],
    ]);
  });

  it('takes names written differently by two files of one study as the same name (case, accents, empty trailing parts)', () => {
    const instances = [
      headerWith({ patientName: 'Núñez^María', patientBirthDate: '20150304' }, '1.2.5', '1.2.5.1.1'),
      headerWith({ patientName: 'NUNEZ^MARIA^^^', patientBirthDate: '20150304' }, '1.2.5', '1.2.5.1.2'),
      headerWith({ patientName: 'Nunez^Maria=', patientBirthDate: '20150304' }, '1.2.5', '1.2.5.1.3'),
    ];
    expect(reviewStudyIdentities(instances, child).map((r) => [r.matches, r.mismatches])).toEqual([[true, []]]);
  });
});

describe('mergeImagingStudies', () => {
  const uploaded = buildImagingStudies(
    [headerWith({ studyDescription: 'CR chest' }, '1.2.3', '1.2.3.1.1'), headerWith({}, '1.2.3', '1.2.3.1.2'), headerWith({}, '9.9.9', '9.9.9.1.1')],
    { patientReference: PATIENT },
  );
  const pulled: ImagingStudy = {
    resourceType: 'ImagingStudy',
    id: 'pulled-1',
    meta: { tag: [{ system: 'https://second-opinion.example.org/fhir/CodeSystem/origin', code: 'local-ehr' }] },
    identifier: [{ system: 'urn:dicom:uid', value: 'urn:oid:1.2.3' }],
    status: 'available',
    subject: { reference: 'Patient/ehr-9' },
    endpoint: [{ reference: 'Endpoint/dicomweb-a' }],
    numberOfSeries: 1,
    numberOfInstances: 40,
    series: [
      {
        uid: '1.2.3.1',
        modality: { system: DICOM_DCM_SYSTEM, code: 'CR' },
        endpoint: [{ reference: 'Endpoint/dicomweb-a' }],
        instance: [{ uid: '1.2.3.1.1', sopClass: { system: 'urn:ietf:rfc:3986', code: 'urn:oid:1.2.840.10008.5.1.4.1.1.1' } }],
      },
    ],
  };

  it('keeps the pulled study and its DICOMweb endpoint, unions instances, records the merge', () => {
    const frozen = structuredClone(pulled);
    const result = mergeImagingStudies([pulled], uploaded);
    expect(pulled).toEqual(frozen);
    expect(result.studies).toHaveLength(2);
    const merged = result.studies[0] as ImagingStudy;
    expect(merged.id).toBe('pulled-1');
    expect(merged.subject).toEqual({ reference: 'Patient/ehr-9' });
    expect(merged.endpoint).toEqual([{ reference: 'Endpoint/dicomweb-a' }]);
    expect(merged.series?.[0]?.endpoint).toEqual([{ reference: 'Endpoint/dicomweb-a' }]);
    expect(merged.series?.[0]?.instance?.map((i) => i.uid)).toEqual(['1.2.3.1.1', '1.2.3.1.2']);
    expect(merged.numberOfInstances).toBe(40);
    expect(merged.description).toBe('CR chest');
    expect(merged.meta?.tag?.map((t) => t.code)).toEqual(['local-ehr', 'family-upload']);
    expect(result.studies[1]?.identifier?.[0]?.value).toBe('urn:oid:9.9.9');
    expect(result.merges).toEqual([
      { studyInstanceUid: '1.2.3', keptId: 'pulled-1', mergedId: uploaded[0]?.id, from: 'uploaded', addedSeries: 0, addedInstances: 1 },
    ]);
    expect(result.replacements.get(uploaded[0]?.id ?? '')).toBe('pulled-1');
  });

  it('two pulled copies of one study fold together with both endpoints', () => {
    const other: ImagingStudy = { ...structuredClone(pulled), id: 'pulled-2', endpoint: [{ reference: 'Endpoint/dicomweb-b' }] };
    const result = mergeImagingStudies([pulled, other], []);
    expect(result.studies).toHaveLength(1);
    expect(result.studies[0]?.endpoint).toEqual([{ reference: 'Endpoint/dicomweb-a' }, { reference: 'Endpoint/dicomweb-b' }]);
    expect(result.replacements.get('pulled-2')).toBe('pulled-1');
  });
});

describe('one SOP Instance UID, different content', () => {
  const base = parseDicomHeader(readCorpus('pydicom__MR_small_implicit.dcm'));
  if (!base.ok) throw new Error(base.reason);
  const h = base.header;
  const blob = (c: string): string => c.repeat(64);
  const tagsOf = (s: ImagingStudy | undefined): (string | undefined)[] => (s?.meta?.tag ?? []).map((t) => t.code);

  it('two files of one transfer syntax with other bytes: both listed, the study tagged sop-instance-uid-conflict', () => {
    const instances: DicomInstanceInput[] = [
      { header: h, blobSha256: blob('a'), fileName: 'IM1' },
      { header: h, blobSha256: blob('b'), fileName: 'IM1-copy' },
    ];
    expect([...conflictingSopInstanceUids(instances)]).toEqual([h.sopInstanceUid]);
    const [study] = buildImagingStudies(instances, { patientReference: PATIENT });
    expect(study?.series?.[0]?.instance).toHaveLength(2);
    expect(tagsOf(study)).toContain('sop-instance-uid-conflict');
  });

  it('the same UID in two series: both listed, the study tagged', () => {
    const other = { ...h, seriesInstanceUid: `${h.seriesInstanceUid}.9` };
    const instances: DicomInstanceInput[] = [
      { header: h, blobSha256: blob('a'), fileName: 'IM1' },
      { header: other, blobSha256: blob('c'), fileName: 'IM1-other-series' },
    ];
    expect([...conflictingSopInstanceUids(instances)]).toEqual([h.sopInstanceUid]);
    const [study] = buildImagingStudies(instances, { patientReference: PATIENT });
    expect(study?.series).toHaveLength(2);
    expect(tagsOf(study)).toContain('sop-instance-uid-conflict');
  });

  it('the same bytes twice, or one instance in two transfer syntaxes of its series: listed once, no flag', () => {
    const transcoded = { ...h, transferSyntaxUid: '1.2.840.10008.1.2.5' };
    const instances: DicomInstanceInput[] = [
      { header: h, blobSha256: blob('a'), fileName: 'IM1' },
      { header: h, blobSha256: blob('a'), fileName: 'IM1-again' },
      { header: transcoded, blobSha256: blob('d'), fileName: 'IM1-rle' },
    ];
    expect(conflictingSopInstanceUids(instances).size).toBe(0);
    const [study] = buildImagingStudies(instances, { patientReference: PATIENT });
    expect(study?.numberOfInstances).toBe(1);
    expect(tagsOf(study)).not.toContain('sop-instance-uid-conflict');
  });
});
