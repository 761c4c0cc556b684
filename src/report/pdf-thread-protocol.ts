/**
 * Messages between {@link PdfThread} and its worker (`pdf-worker.ts`). One render at a time: `render`
 * carries the job — plain, structured-cloneable data (strings, numbers, arrays, `Date`s) and the
 * font paths — and is answered `rendered` with the PDF in an ArrayBuffer of its own (transferred,
 * not copied) or `failed` with the error the render threw.
 */
import type { Receipt } from '../billing/receipt';
import type { ReportFontPaths } from './report-fonts';
import type { ReportInput } from './report-pdf';

/** What to render: the opinion report or a payment receipt, with the fonts to draw it with. */
export type PdfJob =
  | { readonly kind: 'report'; readonly input: ReportInput; readonly fonts: ReportFontPaths }
  | { readonly kind: 'receipt'; readonly receipt: Receipt; readonly now: Date; readonly fonts: ReportFontPaths };

export type PdfThreadRequest = { readonly type: 'render'; readonly id: number; readonly job: PdfJob };

export type PdfThreadReply =
  | { readonly type: 'ready' }
  | { readonly type: 'rendered'; readonly id: number; readonly pdf: ArrayBuffer }
  | { readonly type: 'failed'; readonly id: number; readonly error: { readonly name: string; readonly message: string; readonly stack?: string } };
