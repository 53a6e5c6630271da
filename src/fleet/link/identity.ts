/**
 * The deploy broker takes the client certificate's CN as the MQTT username and allows it only
 * lvunet/<CN>/...: a device id that differs would have every result refused (PUBACK 0x87).
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';

export function certificateCommonName(certFile: string): string | undefined {
  const cert = new X509Certificate(readFileSync(certFile));
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject);
  return cn?.[1];
}

/** Throws, naming the certificate, its CN and the fix, when the device id is not the certificate's CN. */
export function checkCertificateIdentity(certFile: string, device: string): void {
  let cn: string | undefined;
  try {
    cn = certificateCommonName(certFile);
  } catch (err) {
    throw new Error(`client certificate ${certFile} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  if (cn !== device) {
    throw new Error(
      `device id ${JSON.stringify(device)} does not match the client certificate ${certFile} (CN ${cn === undefined ? 'missing' : JSON.stringify(cn)}): ` +
        `the broker knows this device by the certificate and would refuse every result; set device.id to ${cn === undefined ? 'the certificate CN' : JSON.stringify(cn)} or use this device's certificate`,
    );
  }
}
