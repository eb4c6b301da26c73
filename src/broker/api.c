/* api.c: the APIs served and the version ranges advertised.  The ranges are
 * chosen so that every client in shared/kafka-protocol/CLIENTS.md finds
 * record format v2 and the versions it sends, and each version in a range is
 * implemented by its handler. */
#include "broker/api.h"

#include "cluster/cluster.h"
#include "protocol/kmsg.h"

const struct api_entry api_table[] = {
    {KAPI_PRODUCE, 0, 7, handle_produce},
    {KAPI_FETCH, 0, 11, handle_fetch},
    {KAPI_LISTOFFSETS, 0, 3, handle_list_offsets},
    {KAPI_METADATA, 0, 6, handle_metadata},
    {KAPI_APIVERSIONS, 0, 3, handle_api_versions},
    {KAPI_CREATETOPICS, 0, 4, handle_create_topics},
    {KAPI_DELETETOPICS, 0, 3, handle_delete_topics},
    {KAPI_DESCRIBECONFIGS, 0, 2, handle_describe_configs},
    {KAPI_CREATEPARTITIONS, 0, 1, handle_create_partitions},
    {KAPI_OFFSETCOMMIT, 0, 7, handle_offset_commit},
    {KAPI_OFFSETFETCH, 0, 5, handle_offset_fetch},
    {KAPI_FINDCOORDINATOR, 0, 2, handle_find_coordinator},
    {KAPI_JOINGROUP, 0, 5, handle_join_group},
    {KAPI_HEARTBEAT, 0, 3, handle_heartbeat},
    {KAPI_LEAVEGROUP, 0, 3, handle_leave_group},
    {KAPI_SYNCGROUP, 0, 3, handle_sync_group},
    {KAPI_DESCRIBEGROUPS, 0, 4, handle_describe_groups},
    {KAPI_LISTGROUPS, 0, 2, handle_list_groups},
    {KAPI_DELETEGROUPS, 0, 1, handle_delete_groups},
    {KAPI_OFFSETDELETE, 0, 0, handle_offset_delete},
    {KAPI_ALTERCONFIGS, 0, 1, handle_alter_configs},
    {KAPI_DELETERECORDS, 0, 1, handle_delete_records},
    {KAPI_INITPRODUCERID, 0, 4, handle_init_producer_id},
    {KAPI_INCREMENTALALTERCONFIGS, 0, 1, handle_incremental_alter_configs},
    {KAPI_DESCRIBELOGDIRS, 0, 4, handle_describe_log_dirs},
    {KAPI_OFFSETFORLEADEREPOCH, 0, 3, handle_offset_for_leader_epoch},
    {KAPI_ALTERPARTITION, 0, 2, handle_alter_partition},
    {KAPI_BROKERREGISTRATION, 0, 0, handle_broker_registration},
    {KAPI_BROKERHEARTBEAT, 0, 0, handle_broker_heartbeat},
    {KAPI_ALTERPARTITIONREASSIGNMENTS, 0, 0, handle_alter_partition_reassignments},
    {KAPI_LISTPARTITIONREASSIGNMENTS, 0, 0, handle_list_partition_reassignments},
    {KAPI_UNREGISTERBROKER, 0, 0, handle_unregister_broker},
};

const int api_table_len = sizeof api_table / sizeof api_table[0];

const struct api_entry *api_find(int16_t key)
{
    for (int i = 0; i < api_table_len; i++)
        if (api_table[i].key == key)
            return &api_table[i];
    return NULL;
}
