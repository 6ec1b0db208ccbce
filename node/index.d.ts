// Types of snapsafe's Node binding (index.js): node:crypto's shapes.
export function randomBytes(size: number): Buffer;
export function randomBytes(size: number, callback: (err: Error | null, buf: Buffer) => void): void;
export function randomFillSync<T extends ArrayBufferView | ArrayBuffer>(buf: T, offset?: number, size?: number): T;
export function randomFill<T extends ArrayBufferView | ArrayBuffer>(buf: T, callback: (err: Error | null, buf: T) => void): void;
export function randomFill<T extends ArrayBufferView | ArrayBuffer>(buf: T, offset: number, callback: (err: Error | null, buf: T) => void): void;
export function randomFill<T extends ArrayBufferView | ArrayBuffer>(buf: T, offset: number, size: number, callback: (err: Error | null, buf: T) => void): void;
export function randomInt(max: number): number;
export function randomInt(min: number, max: number): number;
export function randomInt(max: number, callback: (err: Error | null, value: number) => void): void;
export function randomInt(min: number, max: number, callback: (err: Error | null, value: number) => void): void;
export function randomUUID(options?: { disableEntropyCache?: boolean }): string;
export function randomUUIDv7(options?: { disableEntropyCache?: boolean }): string;
export function status(): string;
export function sourceName(): string;
