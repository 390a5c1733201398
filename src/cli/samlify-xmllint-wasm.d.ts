// The package ships no types: its one export, as samlify.setSchemaValidator takes it (the dev IdP's
// SAML side; test/support declares the same for the tests).
declare module '@authenio/samlify-xmllint-wasm' {
  export function validate(xml: string): Promise<boolean>;
}
