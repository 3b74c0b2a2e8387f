import { Field } from "./field.js";

type OnValue = (value: string) => void;

/** The email field of sign-in and sign-up (the browser's password manager knows it as the username). */
export function EmailField({ value, onValue }: { value: string; onValue: OnValue }) {
  return (
    <Field label="Email">
      <input
        type="email"
        name="email"
        autoComplete="username"
        required
        value={value}
        onInput={(e) => onValue(e.currentTarget.value)}
      />
    </Field>
  );
}

/** A password: `current` for sign-in, else a new one (the API's rule: 10 characters or more). */
export function PasswordField({
  value,
  onValue,
  current,
}: {
  value: string;
  onValue: OnValue;
  current?: boolean;
}) {
  return (
    <Field label="Password" {...(current ? {} : { hint: "10 characters or more" })}>
      <input
        type="password"
        name="password"
        autoComplete={current ? "current-password" : "new-password"}
        required
        minLength={current ? 1 : 10}
        value={value}
        onInput={(e) => onValue(e.currentTarget.value)}
      />
    </Field>
  );
}

/** An optional display name. */
export function NameField({ value, onValue }: { value: string; onValue: OnValue }) {
  return (
    <Field label="Name" hint="optional">
      <input
        type="text"
        name="name"
        autoComplete="name"
        value={value}
        onInput={(e) => onValue(e.currentTarget.value)}
      />
    </Field>
  );
}
