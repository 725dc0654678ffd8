/* errors.c - placeholder */
typedef int llmgate_placeholder_errors;
