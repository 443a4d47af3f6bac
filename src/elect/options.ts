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
  onMaster?: string[];
  onSlave?: string[];
}
