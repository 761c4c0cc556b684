/**
 * Whether `err` is a failure of the machine rather than a verdict on the data: node sets `syscall` on
 * the errors of system calls (a write to a full disk, ENOSPC; a read or write failing, EIO; EMFILE…).
 * zlib's and yauzl's errors on damaged data, and PostgreSQL's, carry none.
 */
export function isSystemError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === 'string';
}
