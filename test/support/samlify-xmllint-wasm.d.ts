// The package ships no types: its one export, as samlify.setSchemaValidator takes it.
declare module '@authenio/samlify-xmllint-wasm' {
  export function validate(xml: string): Promise<boolean>;
}
