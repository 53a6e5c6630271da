/**
 * Where the ingest reads on a NATS cluster: the server's own MQTT message stream, through one
 * durable consumer shared by every ingest process (deploy/nats/ingest-consumer.json is this
 * definition; a test keeps the two equal).
 *
 * Why that stream and not one of our own capturing `lvunet.*.result`: nats-server 2.9 stores every
 * QoS 1 MQTT PUBLISH in `$MQTT_msgs` (subject `$MQTT.msgs.<subject>`, replicated by
 * `mqtt.stream_replicas`) *before* it sends the PUBACK, and closes the connection without one when
 * the store fails. A stream of our own would only see the plain NATS publish, which the server
 * forwards without waiting: while that stream elects a new leader (seconds, after its node is
 * killed) every result is acknowledged to the device and lost (measured: bench/fleet-cluster.ts,
 * README "Clustered broker"). So a device's PUBACK means "stored on a quorum", and the device keeps
 * the result in its offline queue until then.
 *
 * `$MQTT_msgs` has interest retention: a message stays until every consumer whose filter matches
 * acknowledged it, and is not kept at all when none matches. The ingest's durable consumer is that
 * interest; create it (`fleet ingest --nats` does) before devices publish.
 */
import { AckPolicy, DeliverPolicy, ReplayPolicy, nanos, type ConsumerConfig, type JetStreamManager } from 'nats';

/** nats-server's stream of QoS 1 MQTT messages (mqtt.go: mqttStreamName). */
export const MQTT_STREAM = '$MQTT_msgs';
/** Prefix nats-server puts before a message's subject in that stream (mqttStreamSubjectPrefix). */
export const MQTT_STREAM_SUBJECT_PREFIX = '$MQTT.msgs.';
export const INGEST_DURABLE = 'ingest';

/**
 * The NATS subject form of an MQTT topic prefix: a prefix may span levels (`site-a/lvunet`), and the
 * server's subjects have '.' where MQTT has '/'.
 */
export function subjectPrefix(topicPrefix: string): string {
  return topicPrefix.replaceAll('/', '.');
}

/** The ingest's durable pull consumer: every ingest process pulls from this one. */
export function ingestConsumerConfig(topicPrefix: string, maxAckPending: number, ackWaitMs: number): Partial<ConsumerConfig> & { durable_name: string } {
  const prefix = subjectPrefix(topicPrefix);
  return {
    durable_name: INGEST_DURABLE,
    // Everything under the prefix: results, events, status (QoS 1). Command and reply messages
    // (also QoS 1) match too and are acknowledged without a row; nats-server 2.9 allows one filter.
    filter_subject: `${MQTT_STREAM_SUBJECT_PREFIX}${prefix}.>`,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    replay_policy: ReplayPolicy.Instant,
    // A delivery not acknowledged within ack_wait (its process died before the commit) goes to
    // another puller. Longer than a slow commit, or rows arrive twice (harmless: (device, seq) is
    // the key) and the window fills with redeliveries.
    ack_wait: nanos(ackWaitMs),
    // Deliveries out at once, over all ingest processes: what a stalled database can hold up.
    max_ack_pending: maxAckPending,
    max_deliver: -1,
  };
}

/**
 * Checks that the server's MQTT stream exists (a device or the ingest's own probe connected over
 * MQTT once) and is replicated: with one replica a killed node would take stored results with it.
 */
export async function checkMqttStream(jsm: JetStreamManager, minReplicas = 3): Promise<number> {
  let replicas: number;
  try {
    replicas = (await jsm.streams.info(MQTT_STREAM)).config.num_replicas;
  } catch (err) {
    if (/stream not found/i.test((err as Error).message)) {
      throw new Error(`JetStream stream ${MQTT_STREAM} does not exist yet: it is created by nats-server when the first MQTT client of the account connects (start a device, then the ingest)`, {
        cause: err,
      });
    }
    throw err;
  }
  if (replicas < minReplicas) {
    throw new Error(`JetStream stream ${MQTT_STREAM} has ${replicas} replica(s), fewer than ${minReplicas}: set mqtt.stream_replicas: 3 (deploy/nats/nats-server.conf)`);
  }
  return replicas;
}
