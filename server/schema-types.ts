// Option types are written out by hand beside their schemas (readable, no type-level schema magic);
// this marker keeps them deeply readonly, as loadConfig freezes what it returns.
export type FromSchemaLike<T> = DeepReadonly<T>;

export type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;
