import Transport from 'winston-transport';

/** Collects the service logger's lines, as written, while it is attached (`logger.add` / `logger.remove`). */
export class CaptureTransport extends Transport {
  readonly lines: string[] = [];
  override log(info: Record<PropertyKey, unknown>, next: () => void): void {
    const formatted = info[Symbol.for('message')];
    this.lines.push(typeof formatted === 'string' ? formatted : JSON.stringify(info));
    next();
  }
}
