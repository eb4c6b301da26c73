/* commands.h: one entry point per subcommand of bin/shopstream.  Each takes
 * argv with argv[0] = the subcommand name, prints errors to stderr as one
 * sentence, and returns the process exit code. */
#ifndef SHOPSTREAM_COMMANDS_H
#define SHOPSTREAM_COMMANDS_H

int cmd_broker(int argc, char **argv);
int cmd_topic(int argc, char **argv);
int cmd_cluster(int argc, char **argv);
/* cluster reassign|reassignments|remove-broker (cluster_admin.c); argv[0] is the subcommand. */
int cluster_admin(int argc, char **argv);
const char *cluster_admin_usage(void);
int cmd_produce(int argc, char **argv);
int cmd_consume(int argc, char **argv);
int cmd_group(int argc, char **argv);
int cmd_simulate(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_process(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_demo(int argc, char **argv);

#endif
