import type { ColumnType } from "kysely";

/** Column helpers shared by the table types (schema-*.ts). */
export type CreatedAt = ColumnType<Date, Date | string | undefined, never>;
export type Json<T> = ColumnType<T, string, string>;
/** bigint: the drivers answer a string (pg) or a bigint (PGlite); read it with Number(). */
export type Int8 = ColumnType<string | number | bigint, number, number>;
