/** What `elect` is asked to do: the options the command line gives it (cli/config.ts). */
export interface ElectOptions {
  service: string;
  queryName: string;
  queryTags: string[];
  masterTag: string;
  slaveTag: string;
  lockKey: string;
  sessionTtl: number;
  lockDelay: number;
  watch: boolean;
  roleExitCodes: boolean;
  /** A master at warning stays master (the query then answers warning instances too). */
  allowWarning: boolean;
  /** IDs of the election check (never counted for health, never bound to the session). */
  checkIds: string[];
  onMaster?: string[];
  onSlave?: string[];
}
