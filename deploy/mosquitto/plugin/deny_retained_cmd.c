/*
 * mosquitto plugin: refuses a retained PUBLISH to any command topic (a topic with a `cmd` level,
 * e.g. lvunet/<id>/cmd/<name>). acl_file cannot say this (its `write` grant covers retained and
 * plain publishes alike) and the broker-wide `retain_available false` would also break the
 * retained birth/will on lvunet/<id>/status. A retained command would run again on every
 * reconnect of the device, overriding whatever the operator sent since.
 *
 * mosquitto 2.0 consults both acl_file and the plugin's ACL callback: a publish must pass both.
 * The callback defers on everything but a retained write to a command topic, so it never grants
 * anything acl_file refuses. A v5 client gets PUBACK 0x87 (not authorised); nothing is stored.
 *
 * Build: deploy/mosquitto/plugin/build.sh (needs mosquitto-dev and libmosquitto-dev headers).
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

static mosquitto_plugin_id_t *plugin_id = NULL;

/* Whether one level of the topic is exactly "cmd" (not the first: that is the prefix). */
static bool is_command_topic(const char *topic)
{
	const char *level = strchr(topic, '/');
	while (level != NULL) {
		level++;
		if (strncmp(level, "cmd", 3) == 0 && (level[3] == '/' || level[3] == '\0')) return true;
		level = strchr(level, '/');
	}
	return false;
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
	const struct mosquitto_evt_acl_check *ed = event_data;
	(void)event;
	(void)userdata;
	if (ed->access == MOSQ_ACL_WRITE && ed->retain && ed->topic != NULL && is_command_topic(ed->topic)) {
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "lvunet: refused a retained command from %s on %s",
				mosquitto_client_id(ed->client), ed->topic);
		return MOSQ_ERR_ACL_DENIED;
	}
	return MOSQ_ERR_PLUGIN_DEFER;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	for (int i = 0; i < supported_version_count; i++) {
		if (supported_versions[i] == 5) return 5;
	}
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata, struct mosquitto_opt *options, int option_count)
{
	(void)userdata;
	(void)options;
	(void)option_count;
	plugin_id = identifier;
	return mosquitto_callback_register(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, NULL);
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	(void)userdata;
	(void)options;
	(void)option_count;
	return mosquitto_callback_unregister(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
}
