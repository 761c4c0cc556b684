import { openCaseIn } from '../support/opinion-case';
import { eventually, startTestService, type TestService } from '../support/service';
import { transferRequest } from './webhook-support';

let svc: TestService;

beforeAll(async () => {
  svc = await startTestService();
});
afterAll(async () => {
  await svc.stop();
});

interface Listed {
  items: { id: number; type: string; readAt: string | null; readBy: string | null }[];
}

it('marks a notification read for the team: the first reader and time are kept, and unread ones are listed apart', async () => {
  const first = await svc.token('case_manager', 'cm-first-reader');
  const second = await svc.token('case_manager', 'cm-second-reader');
  const caseId = await openCaseIn(svc, first, 'report_signed');
  await transferRequest(svc, first, caseId);
  const list = async (query = ''): Promise<Listed['items']> =>
    ((await (await svc.request('GET', `/api/notifications?caseId=${caseId}${query}`, { token: second })).json()) as Listed).items;
  const [note] = await eventually(list, (items) => items.length > 0, 30_000);
  if (!note) throw new Error('no notification');
  expect(note).toMatchObject({ type: 'transfer.requested', readAt: null, readBy: null });

  expect((await svc.request('POST', `/api/notifications/${note.id}/read`, { token: first })).status).toBe(204);
  const read = (await list()).find((n) => n.id === note.id);
  expect(read).toMatchObject({ readBy: 'cm-first-reader', readAt: expect.any(String) });
  // Another case manager reading it later changes nothing: the team sees who took it, and when.
  expect((await svc.request('POST', `/api/notifications/${note.id}/read`, { token: second })).status).toBe(204);
  expect((await list()).find((n) => n.id === note.id)).toEqual(read);
  expect((await list('&unread=true')).map((n) => n.id)).not.toContain(note.id);
  expect((await svc.request('POST', '/api/notifications/999999999/read', { token: first })).status).toBe(404);
});
