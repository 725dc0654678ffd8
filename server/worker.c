/* worker.c - placeholder */
typedef int llmgate_placeholder_worker;
